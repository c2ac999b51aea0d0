SELECT o.upd_dttm AS c0, o.acc_no AS c1, o.ord_stat AS c2, c.loinc_cd AS c3, o.panel_cd AS c4, c.panel_desc AS c5, p.pt_guid AS c6, e.visit_guid AS c7, o.collect_dttm AS c8, o.rpt_dttm AS c9, (SELECT group_concat(results.res_guid, ',') AS aggregate_strings_1 
FROM lab_result AS results 
WHERE results.ord_no = o.ord_no AND (results.del_flg IS NULL OR NOT (results.del_flg = 'Y' AND (1 = 1) = 1))) AS c10, 0 AS _b, o.ord_guid AS _id, o.collect_dttm AS _k0 
FROM lab_order AS o JOIN pt_master AS p ON o.pt_seq = p.pt_seq LEFT OUTER JOIN lab_panel_cd AS c ON o.panel_cd = c.panel_cd LEFT OUTER JOIN enc_visit AS e ON o.visit_no = e.visit_no 
WHERE (o.del_flg IS NULL OR NOT (o.del_flg = 'Y' AND (1 = 1) = 1)) AND (p.del_flg IS NULL OR NOT (p.del_flg = 'Y' AND (1 = 1) = 1)) AND (EXISTS (SELECT * 
FROM lab_result AS results 
WHERE results.ord_no = o.ord_no AND (results.del_flg IS NULL OR NOT (results.del_flg = 'Y' AND (1 = 1) = 1)) AND results.res_guid = 'abc' AND (1 = 1) = 1)) ORDER BY o.collect_dttm DESC, o.ord_guid
 LIMIT 21 OFFSET 0
